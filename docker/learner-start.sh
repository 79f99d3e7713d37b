#!/bin/sh
# A learner's container in the classroom (docker/jupyterhub_config.py runs it): copy
# the course into the learner's home on the first start (a notebook they changed is
# never overwritten), then run the single-user server with the hub's arguments.
set -eu
course="${LABKIT_COURSE_DIR:-/opt/labkit/notebooks}"
python -c '
import sys
from pathlib import Path
from labkit.workcopy import prepare_work_copy
prepare_work_copy(Path(sys.argv[1]), Path.home() / "course")
' "$course"
exec jupyterhub-singleuser "$@"
