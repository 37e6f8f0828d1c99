#!/bin/bash
# The RUNTIME the validation files call: the runtime under test with this run's own state root.
# Each call and its stderr go to runtime.log too, for the failure message.
echo "\$ $(basename "$RTT_RUNTIME") $*" >> "$RTT_WORK/runtime.log"
exec "$RTT_RUNTIME" --root "$RTT_WORK/state" "$@" 2> >(tee -a "$RTT_WORK/runtime.log" >&2)
