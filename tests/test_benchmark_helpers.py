"""The helpers shared by the benchmark scripts (benchmarks/bench_common.py)."""

import json

from benchmarks.bench_common import machine_info, node_seconds, write_figures

LOG = """\
[11/29/26 21:00:00] INFO     Running node: afm.simulate: simulate_curves([params:afm]) -> [afm.raw]
                    INFO     Completed node: afm.simulate
[11/29/26 21:00:07] INFO     Running node: afm.pretrain: pretrain([afm.raw]) -> [afm.encoder]
[11/29/26 21:01:10] INFO     Completed node: afm.pretrain
                    INFO     Running node: report: report([afm.metrics]) -> [afm_metrics]
"""


def test_node_seconds_reads_kedro_log_stamps_and_drops_the_namespace():
    assert node_seconds(LOG, "afm") == {"afm.node.simulate_s": 0.0, "afm.node.pretrain_s": 63.0}


KEDRO_1_LOG = """\
[12/07/26 03:06:25] INFO     Running node: pretrain: pretrain_ucr([ucr.GunPoint.data]) -> [ucr.GunPoint.encoders]
[12/07/26 03:07:30] INFO     Completed node: ucr.GunPoint.pretrain
                    INFO     Running node: pretrain: pretrain_ucr([ucr.ItalyPower.data]) -> [ucr.ItalyPower.encoders]
[12/07/26 03:07:42] INFO     Completed node: ucr.ItalyPower.pretrain
                    INFO     Running node: fine_tune: run_label_efficiency([wav2vec.epochs]) -> [wav2vec.runs]
[12/07/26 03:09:42] INFO     Completed node: wav2vec.fine_tune
"""


def test_node_seconds_pairs_kedro_1_bare_start_names_with_namespaced_completions():
    assert node_seconds(KEDRO_1_LOG, "wav2vec") == {
        "wav2vec.node.ucr.GunPoint.pretrain_s": 65.0,
        "wav2vec.node.ucr.ItalyPower.pretrain_s": 12.0, "wav2vec.node.fine_tune_s": 120.0}


def test_node_seconds_of_an_empty_or_unstamped_log_is_empty():
    assert node_seconds("", "afm") == {}
    assert node_seconds("INFO Running node: x\nINFO Completed node: x\n", "afm") == {}


def test_machine_info_names_versions_and_marks_missing_packages(tmp_path):
    info = machine_info("numpy", "no-such-distribution")
    assert info["machine.numpy"].count(".") >= 1
    assert info["machine.no-such-distribution"] is None
    assert info["machine.scikit-learn"].count(".") >= 1 and info["machine.scipy"]  # always
    assert info["machine.cpu"] and info["machine.cpu_capability"] in {"DEFAULT", "AVX2", "AVX512"}
    assert info["machine.usable_cpus"] >= 1
    out = tmp_path / "results" / "figures.json"
    write_figures(info, out)
    assert json.loads(out.read_text()) == info
