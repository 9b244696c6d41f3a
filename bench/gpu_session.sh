#!/usr/bin/env bash
# One lent-GPU session in one device command: the quick label-efficiency study, then every GPU bench row that
# fits, everything packed under $OUT (the device tool brings back at most 8 files). BENCHMARKS.md ("One device
# session") says how to call it. Modes:
#   bash bench/gpu_session.sh          # all: study (capped at STUDY_CAP_S, default 300 s), then benches
#   bash bench/gpu_session.sh study    # the study alone (capped at STUDY_CAP_S if set, else by TOTAL_S)
#   bash bench/gpu_session.sh bench    # bench/gpu_quick.py alone, in TOTAL_S
#   bash bench/gpu_session.sh --smoke  # the same on a CPU, tiny (tests): no wheels needed, no GPU
# Time: the whole script ends within TOTAL_S (default 560 s: the device tool stops a command at 600 s). The
# study is estimated at ~260 s (recipes/configs/study_gpu_quick.yaml) and the benches get what is left
# (bench/gpu_quick.py runs its steps in speed-target order and skips those that do not fit).
# Environment: OUT (results; the device tool sets it), WORK (run folders, default outputs/gpu_session),
# PYTHON (default python3), TOTAL_S, STUDY_CAP_S, GPU_QUICK_STEPS (a subset of bench/gpu_quick.py's steps).
set -u -o pipefail
cd "$(dirname "$0")/.."

MODE=all
SMOKE=()
for arg in "$@"; do
    case "$arg" in
        all | study | bench) MODE=$arg ;;
        --smoke) SMOKE=(--smoke) ;;
        *) echo "usage: bash bench/gpu_session.sh [all|study|bench] [--smoke]" >&2; exit 2 ;;
    esac
done
PYTHON=${PYTHON:-python3}
OUT=${OUT:-outputs/gpu_session/out}
WORK=${WORK:-outputs/gpu_session}
TOTAL_S=${TOTAL_S:-560}
[ "$MODE" = study ] && STUDY_CAP_S=${STUDY_CAP_S:-$TOTAL_S}
STUDY_CAP_S=${STUDY_CAP_S:-300}
RESERVE_S=25  # packing the results and the study's --finished_only tables
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/session.log") 2>&1

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
if compgen -G ".whl/*.whl" >/dev/null; then  # the GPU machine's Python lacks `datasets`: carried as wheels
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target .gpu-site .whl/*.whl || exit 1
    export PYTHONPATH=$PWD:$PWD/.gpu-site
elif [ ${#SMOKE[@]} -eq 0 ]; then
    echo "no .whl/*.whl: copy the wheels first (BENCHMARKS.md, 'One device session')" >&2
    exit 1
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

{
    date -u +"%Y-%m-%d %H:%M:%S UTC"
    echo "mode $MODE ${SMOKE[*]}; budget ${TOTAL_S}s, study cap ${STUDY_CAP_S}s"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,memory.total --format=csv 2>&1 || true
    "$PYTHON" -c "import torch, transformers, datasets, accelerate, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print('transformers', transformers.__version__, 'datasets', datasets.__version__, 'accelerate', accelerate.__version__, 'timm', timm.__version__)"
    nproc
} 2>&1 | tee "$OUT/environment.txt"

left() { echo $((TOTAL_S - SECONDS)); }

run_study() {
    local cap=$1 config=recipes/configs/study_gpu_quick.yaml study_dir=$WORK/study_quick
    echo "=== study: $config, capped at ${cap}s ($(left)s left)"
    timeout -k 10 "$cap" "$PYTHON" recipes/benchmark.py --config "$config" --output_dir "$study_dir" "${SMOKE[@]}"
    local status=$?
    if [ $status -ne 0 ]; then  # stopped or failed part-way: the tables of the finished rows
        echo "=== study exited with $status after ${SECONDS}s: tables of its finished rows"
        timeout -k 5 60 "$PYTHON" recipes/benchmark.py --config "$config" --output_dir "$study_dir" --finished_only "${SMOKE[@]}"
    fi
    # results without weights, checkpoints or the Parquet shards (the device tool brings back 16 MiB a file)
    tar -czf "$OUT/study_quick.tar.gz" --exclude='*.safetensors' --exclude='checkpoint-*' --exclude='*.parquet' \
        --exclude='*.bin' --exclude='*.pt' --exclude='*.pth' -C "$WORK" study_quick 2>/dev/null
    cp "$study_dir/RESULTS_section.md" "$OUT/" 2>/dev/null
    return $status
}

run_bench() {
    local budget=$1 bench_dir=$WORK/bench_gpu
    echo "=== benches: bench/gpu_quick.py, budget ${budget}s"
    "$PYTHON" bench/gpu_quick.py --out-dir "$bench_dir" --budget-s "$budget" "${SMOKE[@]}" \
        ${GPU_QUICK_STEPS:+--steps "$GPU_QUICK_STEPS"}
    local status=$?
    tar -czf "$OUT/bench_gpu.tar.gz" --exclude='recipe_work' -C "$WORK" bench_gpu 2>/dev/null
    cp "$bench_dir/report.md" "$OUT/bench_report.md" 2>/dev/null
    return $status
}

study_status=0 bench_status=0
case "$MODE" in
    bench) run_bench $(($(left) - RESERVE_S)) || bench_status=$? ;;
    study | all)
        cap=$STUDY_CAP_S
        [ "$cap" -gt $(($(left) - RESERVE_S)) ] && cap=$(($(left) - RESERVE_S))
        if [ "$cap" -ge 1 ]; then run_study "$cap" || study_status=$?; else echo "=== study: no time left"; study_status=124; fi
        budget=$(($(left) - RESERVE_S))
        if [ "$MODE" = all ]; then
            if [ "$budget" -ge 30 ]; then run_bench "$budget" || bench_status=$?; else echo "=== benches: no time left"; fi
        fi
        ;;
esac
echo "=== done in ${SECONDS}s (study exit $study_status, benches exit $bench_status); files in $OUT:"
ls -l "$OUT"
exit $((study_status != 0 ? study_status : bench_status))
