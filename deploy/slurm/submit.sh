#!/bin/bash
# Submits a sharded kmsload run to Slurm: N shard tasks, then the merge once they have all
# ended (whatever their exit status). Prints the two job ids.
#
#   deploy/slurm/submit.sh SCENARIO RESULTS_DIR [SHARDS] [START_DELAY_SECONDS]
#
# SHARDS defaults to 4. The shards wait for a common start START_DELAY_SECONDS (default 60)
# after submission, so tasks that get their node a little later still start together; a
# shard that starts after that time records by how much. Other settings pass through the
# environment (see kmsload-shards.sbatch). Extra sbatch options (partition, account, time
# limit, nodes) go in SBATCH_* environment variables, e.g. SBATCH_PARTITION=load.
set -euo pipefail

if [ "$#" -lt 2 ] || [ "$#" -gt 4 ]; then
    echo "usage: deploy/slurm/submit.sh SCENARIO RESULTS_DIR [SHARDS] [START_DELAY_SECONDS]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
scenario=$(realpath "$1")
mkdir -p "$2"
results=$(realpath "$2")
shards=${3:-4}
delay=${4:-60}

export KMSLOAD_START_AT="${KMSLOAD_START_AT:-$(date -u -d "+${delay} seconds" +%Y-%m-%dT%H:%M:%SZ)}"
array=$(sbatch --parsable --array="0-$((shards - 1))" \
    "$here/kmsload-shards.sbatch" "$scenario" "$results")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterany:$array" \
    "$here/kmsload-merge.sbatch" "$results")
echo "shards: job $array (${shards} tasks, common start $KMSLOAD_START_AT)"
echo "merge:  job $merge -> $results/merged"
