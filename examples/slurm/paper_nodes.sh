#!/bin/bash
# The paper's study over several GPU nodes under SLURM:
#   sbatch --nodes=2 examples/slurm/paper_nodes.sh data/camus runs/paper
# One task per node. Node 0 (the head) runs efn paper: the stage notebooks (papermill) run there, and every launch of
# a stage's processes spans all the nodes: each SDM trained over every GPU of every node (DDP; the global batch of 96
# stays 96), the synthesis's maps shared out over them, the segmenters and CycleGANs one per GPU. The other nodes run
# efn join, which starts this node's half of each launch (torchrun joins the head's rendezvous) and returns when the
# study has finished. The run directory must be on a file system all nodes share; the job id tells this submission's
# launches from those of earlier ones. Resubmitting the same command resumes (SIGTERM at the time limit reaches every
# task; the trainers save their finished steps).
#SBATCH --job-name=efn-paper
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
#SBATCH --signal=TERM@120            # to every task: efn paper on the head, efn join on the others
#SBATCH --output=efn-paper-%j.log
#SBATCH --partition=PARTITION        # your cluster's GPU partition
set -euo pipefail
DATA=${1:?usage: sbatch examples/slurm/paper_nodes.sh DATA OUT}
OUT=${2:?usage: sbatch examples/slurm/paper_nodes.sh DATA OUT}
source "$(conda info --base)/etc/profile.d/conda.sh" && conda activate echo_from_noise   # environment.yml
export EFN_HEAD_ADDRESS=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)     # node 0: the rendezvous host
efn paper --profile paper --data "$DATA" --out "$OUT" --print-config        # the recipe, into the job's log
srun --kill-on-bad-exit=1 bash -c '
  if [ "$SLURM_NODEID" = 0 ]; then
    exec efn paper --profile paper --data "$1" --out "$2" --device cuda --nodes "$SLURM_JOB_NUM_NODES" --nodes-id "$SLURM_JOB_ID"
  else
    exec efn join "$2" --nodes-id "$SLURM_JOB_ID"
  fi' bash "$DATA" "$OUT"
