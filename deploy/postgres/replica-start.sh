#!/bin/bash
# The read replica: a base backup of the primary on first start (-R writes
# standby.signal and primary_conninfo), then a hot standby that streams its WAL.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_basebackup -h db -U replicator -D "$PGDATA" -R -X stream; do
        echo "waiting for the primary to accept the replication connection..."
        sleep 2
    done
    chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on
