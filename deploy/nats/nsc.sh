#!/bin/sh
# The NATS permissions of provisioner.conf as nsc flags, for operator/JWT (decentralised) deployments.
# Run against your operator, then give the worker the user's .creds file (--nats-creds, or the chart's
# nats.auth.credsKey). Default names; change them together with the worker's flags.
set -eu
ACCOUNT="${ACCOUNT:-PROVISIONER}"

nsc add account --name "$ACCOUNT"
# JetStream for the account (size the limits for your streams; -1 = unlimited).
nsc edit account --name "$ACCOUNT" --js-mem-storage -1 --js-disk-storage -1 --js-streams -1 --js-consumer -1

# The worker: results, dead letters, the ledger, its consumer, and set-up at start.
nsc add user --account "$ACCOUNT" --name provisioner \
  --allow-pub 'provisioner.results.>' \
  --allow-pub 'provisioner.dlq.>' \
  --allow-pub '$KV.provisioner_ledger.>' \
  --allow-pub '$JS.API.DIRECT.GET.KV_provisioner_ledger.>' \
  --allow-pub '$JS.API.STREAM.MSG.GET.KV_provisioner_ledger' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.PROVISIONER_REQUESTS.provisioner' \
  --allow-pub '$JS.ACK.PROVISIONER_REQUESTS.provisioner.>' \
  --allow-pub '$JS.API.INFO' \
  --allow-pub '$JS.API.STREAM.INFO.PROVISIONER_REQUESTS,$JS.API.STREAM.INFO.PROVISIONER_RESULTS,$JS.API.STREAM.INFO.PROVISIONER_DLQ,$JS.API.STREAM.INFO.KV_provisioner_ledger' \
  --allow-pub '$JS.API.STREAM.CREATE.PROVISIONER_REQUESTS,$JS.API.STREAM.CREATE.PROVISIONER_RESULTS,$JS.API.STREAM.CREATE.PROVISIONER_DLQ,$JS.API.STREAM.CREATE.KV_provisioner_ledger' \
  --allow-pub '$JS.API.STREAM.UPDATE.PROVISIONER_REQUESTS,$JS.API.STREAM.UPDATE.PROVISIONER_RESULTS,$JS.API.STREAM.UPDATE.PROVISIONER_DLQ,$JS.API.STREAM.UPDATE.KV_provisioner_ledger' \
  --allow-pub '$JS.API.CONSUMER.INFO.PROVISIONER_REQUESTS.provisioner' \
  --allow-pub '$JS.API.CONSUMER.CREATE.PROVISIONER_REQUESTS.provisioner.>,$JS.API.CONSUMER.CREATE.PROVISIONER_REQUESTS.provisioner' \
  --allow-pub '$JS.API.CONSUMER.DURABLE.CREATE.PROVISIONER_REQUESTS.provisioner' \
  --allow-sub '_INBOX.>'

# The app: publishes requests, reads results.
nsc add user --account "$ACCOUNT" --name app \
  --allow-pub 'provisioner.requests.>' \
  --allow-pub '$JS.API.INFO,$JS.API.STREAM.INFO.PROVISIONER_RESULTS,$JS.API.STREAM.MSG.GET.PROVISIONER_RESULTS' \
  --allow-pub '$JS.API.DIRECT.GET.PROVISIONER_RESULTS.>,$JS.API.DIRECT.GET.PROVISIONER_RESULTS' \
  --allow-pub '$JS.API.CONSUMER.CREATE.PROVISIONER_RESULTS.>,$JS.API.CONSUMER.DELETE.PROVISIONER_RESULTS.>,$JS.API.CONSUMER.INFO.PROVISIONER_RESULTS.>' \
  --allow-pub '$JS.API.CONSUMER.MSG.NEXT.PROVISIONER_RESULTS.>,$JS.FC.PROVISIONER_RESULTS.>' \
  --allow-sub '_INBOX.>' \
  --allow-sub 'provisioner.results.>'

nsc generate creds --account "$ACCOUNT" --name provisioner > provisioner.creds
nsc generate creds --account "$ACCOUNT" --name app > app.creds
echo "wrote provisioner.creds (the worker) and app.creds (the app)"
