#!/bin/bash
# The paper's study on one GPU node under SLURM: `sbatch examples/slurm/paper_1node.sh data/camus runs/paper`.
# efn paper runs the stage notebooks (papermill) in this job's one task; each stage's training goes out to the GPUs
# itself: the two SDMs one after another, each over all the GPUs (DDP, 96 frames a step: 12 per GPU on 8 GPUs,
# accumulated over micro-batches of 12 on fewer), the segmenters and CycleGANs one per GPU, the synthesis split over
# them. Resubmitting the same command resumes: SLURM's SIGTERM at the time limit reaches the running trainer, which
# saves its finished steps (--signal gives it two minutes). Several nodes: examples/slurm/paper_nodes.sh.
#SBATCH --job-name=efn-paper
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
#SBATCH --signal=B:TERM@120          # to this script, which exec made efn itself
#SBATCH --output=efn-paper-%j.log
#SBATCH --partition=PARTITION        # your cluster's GPU partition
set -euo pipefail
DATA=${1:?usage: sbatch examples/slurm/paper_1node.sh DATA OUT}
OUT=${2:?usage: sbatch examples/slurm/paper_1node.sh DATA OUT}
source "$(conda info --base)/etc/profile.d/conda.sh" && conda activate echo_from_noise   # environment.yml
efn paper --profile paper --data "$DATA" --out "$OUT" --print-config        # the recipe, into the job's log
exec efn paper --profile paper --data "$DATA" --out "$OUT" --device cuda
