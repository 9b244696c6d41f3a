"""bench/bench_models.py: the --smoke run (tiny configs, CPU) and row selection."""

import json
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench_models(load_bench):
    return load_bench("bench_models")


@pytest.fixture(scope="module")
def smoke_result(bench_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "models.json"
    exit_code = bench_models.main(["--smoke", "--json", str(path)])
    return exit_code, json.loads(path.read_text())


def test_smoke_runs_every_row_without_error(bench_models, smoke_result):
    exit_code, result = smoke_result
    assert exit_code == 0
    expected = {row.name for row in bench_models.make_rows(bench_models.PRESETS["smoke"], compile_rows=False)}
    rows = {row["name"]: row for row in result["rows"]}
    assert set(rows) == expected
    assert {row["group"] for row in rows.values()} == {"mae", "vit", "hybrid", "cnn"}
    for row in rows.values():
        assert "error" not in row, row
        assert row["images_per_second"] > 0
        assert len(row["step_times_s"]) == 2
        assert row["flops_per_step"] > 0
        assert row["peak_memory_bytes"] > 0
        assert row["memory_kind"] == "cpu_peak_rss"
        assert row["mfu"] is None  # no --peak-tflops on CPU
        assert row["ratio"] == pytest.approx(
            row["images_per_second"] / rows[row["baseline"]]["images_per_second"]
        )
    assert result["environment"]["device_type"] == "cpu"
    assert result["environment"]["dtype"] == "fp32"


def test_smoke_compares_identical_configs(bench_models, smoke_result):
    """Ours and the stock model of a comparison have the same parameters and the same FLOPs per step, except
    that our MAE never embeds the masked patches: exactly their patch projection's FLOPs fewer."""
    rows = {row["name"]: row for row in smoke_result[1]["rows"]}
    preset, (shape,) = bench_models.PRESETS["smoke"], bench_models.PRESETS["smoke"].mae_shapes
    num_patches = (shape.image_size // shape.patch_size) ** 2
    num_masked = num_patches - int(num_patches * (1 - 0.75))
    # forward (2 x patch pixels x hidden per patch) + weight gradient (the same again); no input gradient
    projection_flops = 2 * 2 * shape.patch_size**2 * preset.hidden_size
    ours, stock = rows["mae/16px-p4-b4/ours"], rows["mae/16px-p4-b4/hf-sdpa"]
    assert ours["num_parameters"] == stock["num_parameters"]
    assert (
        stock["flops_per_step"] - ours["flops_per_step"] == shape.batch_size * num_masked * projection_flops
    )
    pairs = [
        ("vit/16px-p4-b4/ours", "vit/16px-p4-b4/timm"),
        ("vit/16px-p4-b4/hf-sdpa", "vit/16px-p4-b4/timm"),
        ("cnn/16px-b4/ours", "cnn/16px-b4/timm-cl"),
    ]
    for ours, stock in pairs:
        assert rows[ours]["num_parameters"] == rows[stock]["num_parameters"], (ours, stock)
        assert rows[ours]["flops_per_step"] == rows[stock]["flops_per_step"], (ours, stock)
    # CPU attention FLOPs are counted (torch has no formula for the CPU kernel): sdpa ~ eager matmuls
    sdpa, eager = (
        rows["mae/16px-p4-b4/hf-sdpa"]["flops_per_step"],
        rows["mae/16px-p4-b4/hf-eager"]["flops_per_step"],
    )
    assert sdpa == pytest.approx(eager, rel=0.05)
    assert rows["mae/16px-p4-b4/hf-sdpa"]["attn_implementation"] == "sdpa"
    assert rows["mae/16px-p4-b4/hf-eager"]["attn_implementation"] == "eager"


def test_rows_selection_adds_baselines(bench_models):
    rows = bench_models.make_rows(bench_models.PRESETS["full"], compile_rows=True)
    selected = [
        row.name for row in bench_models.select_rows(rows, "mae/64px-p8-b512/ours-compile,cnn/*/ours")
    ]
    assert selected == [  # baselines of baselines too: ours-compile -> hf-sdpa-compile -> hf-sdpa
        "mae/64px-p8-b512/hf-sdpa",
        "mae/64px-p8-b512/hf-sdpa-compile",
        "mae/64px-p8-b512/ours-compile",
        "cnn/64px-b512/timm-cl",
        "cnn/64px-b512/ours",
        "cnn/150px-b256/timm-cl",
        "cnn/150px-b256/ours",
    ]
    with pytest.raises(SystemExit, match="matches no row"):
        bench_models.select_rows(rows, "nothing/*")


def test_full_preset_has_the_requested_comparisons(bench_models):
    names = {row.name for row in bench_models.make_rows(bench_models.PRESETS["full"], compile_rows=True)}
    for shape in ("64px-p8-b512", "64px-p8-b2048", "150px-p10-b256"):
        for variant in ("hf-eager", "hf-sdpa", "hf-sdpa-compile", "ours", "ours-compile"):
            assert f"mae/{shape}/{variant}" in names
    assert {"vit/64px-p8-b512/timm", "vit/64px-p8-b512/hf-sdpa", "vit/64px-p8-b512/ours"} <= names
    assert {"hybrid/64px-p8-b512/timm-vit", "hybrid/64px-p8-b512/ours", "cnn/64px-b512/timm-cl"} <= names
    without_compile = bench_models.make_rows(bench_models.PRESETS["full"], compile_rows=False)
    assert not any(row.variant.compile for row in without_compile)


def test_profile_writes_top_ops_and_trace(bench_models, tmp_path):
    path = tmp_path / "profiled.json"
    assert (
        bench_models.main(
            ["--smoke", "--rows", "cnn/*/ours", "--profile", str(tmp_path / "prof"), "--json", str(path)]
        )
        == 0
    )
    rows = {row["name"]: row for row in json.loads(path.read_text())["rows"]}
    profile = rows["cnn/16px-b4/ours"]["profile"]
    assert 1 <= len(profile) <= 10
    assert [op["self_ms_per_step"] for op in profile] == sorted(
        (op["self_ms_per_step"] for op in profile), reverse=True
    )
    assert 0 < sum(op["share"] for op in profile) <= 1.0 + 1e-9
    assert any(
        op["op"].startswith("aten::") and "conv" in op["op"] for op in profile
    )  # a ResNet step convolves
    table = (tmp_path / "prof" / "cnn__16px-b4__ours.txt").read_text()
    assert "Self CPU" in table
    trace = json.loads((tmp_path / "prof" / "cnn__16px-b4__ours.trace.json").read_text())
    assert trace["traceEvents"]


def test_knob_rows_change_one_lever_against_ours(bench_models, tmp_path):
    """`--knobs`: each lever row runs against the row's `ours`; `--repeat 2` times every row twice,
    interleaved, and reports the median round (the lower one of two)."""
    path = tmp_path / "knobs.json"
    patterns = "vit/*/ours-*,hybrid/*/ours-channels-last,cnn/*/ours-bf16,cnn/*/ours-width-x0.5"
    exit_code = bench_models.main(
        ["--smoke", "--knobs", "--repeat", "2", "--rows", patterns, "--json", str(path)]
    )
    assert exit_code == 0
    rows = {row["name"]: row for row in json.loads(path.read_text())["rows"]}
    vit, cnn = "vit/16px-p4-b4", "cnn/16px-b4"
    assert set(rows) == {
        *(f"{vit}/{name}" for name in ("timm", "ours", "ours-attn-eager", "ours-bf16")),
        *(f"{vit}/ours-{lever}" for lever in ("sdpa-math", "sdpa-flash", "sdpa-efficient")),
        *(f"{vit}/ours-width-x{factor}" for factor in ("0.5", "2")),
        *(f"hybrid/16px-p4-b4/{name}" for name in ("timm-vit", "ours", "ours-channels-last")),
        *(f"{cnn}/{name}" for name in ("timm-cl", "ours", "ours-bf16", "ours-width-x0.5")),
    }
    efficient = rows.pop(f"{vit}/ours-sdpa-efficient")
    assert "error" not in efficient and "no EFFICIENT_ATTENTION kernel" in efficient["skipped"]  # none on CPU
    for name, row in rows.items():
        assert "error" not in row, row
        assert len(row["images_per_second_repeats"]) == 2
        assert row["images_per_second"] == min(row["images_per_second_repeats"])
        assert row["ratio"] == pytest.approx(sum(row["ratio_repeats"]) / 2)  # the median of two rounds
        if row["variant"].startswith("ours-"):
            assert row["baseline"] == name.rsplit("/", 1)[0] + "/ours"
        assert row["bf16_autocast"] == row["variant"].endswith("bf16"), name
    assert rows[f"{vit}/ours-attn-eager"]["attn_implementation"] == "eager"
    assert rows[f"{vit}/ours"]["attn_implementation"] == "sdpa"
    assert rows[f"{vit}/ours-sdpa-math"]["sdpa_backend"] == "MATH"
    assert rows["hybrid/16px-p4-b4/ours-channels-last"]["channels_last"]
    parameters = {name: row["num_parameters"] for name, row in rows.items()}
    assert (
        parameters[f"{vit}/ours-width-x0.5"] < parameters[f"{vit}/ours"] < parameters[f"{vit}/ours-width-x2"]
    )
    assert parameters[f"{cnn}/ours-width-x0.5"] < parameters[f"{cnn}/ours"] == parameters[f"{cnn}/ours-bf16"]


def test_knob_rows_only_when_asked_and_the_study_preset_builds(bench_models):
    preset = bench_models.PRESETS["study"]
    assert not any(row.variant.knob for row in bench_models.make_rows(preset))
    rows = {row.name: row for row in bench_models.make_rows(preset, compile_rows=False, knob_rows=True)}
    assert {
        "vit/32px-p8-b64/ours-width-x2",
        "cnn/64px-b64/ours-width-x0.25",
        "hybrid/32px-p32-b64/ours",
    } <= set(rows)
    narrow = bench_models.scale_width(preset, 0.25)
    assert (narrow.hidden_size, narrow.intermediate_size, narrow.cnn_channels) == (16, 32, (16, 32, 64, 128))
    hybrid = rows["hybrid/64px-p32-b64/ours"].build()  # the study's hybrid: 8x stem, patch 4 on its map
    assert hybrid.config.patch_size == 4 and hybrid.config.stem_channels == [32, 64, 128]


def test_merge_repeats_keeps_the_median_round(bench_models):
    runs = [
        {"name": "r", "images_per_second": rate, "ratio": ratio, "round": index}
        for index, (rate, ratio) in enumerate(((3.0, 0.9), (1.0, 1.2), (2.0, 1.0)))
    ]
    merged = bench_models.merge_repeats(runs)
    assert merged["round"] == 2 and merged["images_per_second"] == 2.0
    assert merged["images_per_second_repeats"] == [3.0, 1.0, 2.0]
    assert merged["ratio_repeats"] == [0.9, 1.2, 1.0] and merged["ratio"] == 1.0
    assert bench_models.merge_repeats([runs[0], {"name": "r", "error": "boom"}]) == {
        "name": "r",
        "error": "boom",
    }
