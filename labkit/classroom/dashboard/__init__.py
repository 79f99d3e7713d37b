"""The instructor dashboard: a JupyterHub managed service at `/services/dashboard/`.

Started by the hub as `python -m labkit.classroom.dashboard`, with the stack's
`LABKIT_HOME`: it runs on the instructor side and reads what learners cannot (the
NATS monitoring endpoint, the whole progress bucket, every server's stats, the
class-wide wire tap). Modules, one job each:

    credentials  the dashboard's own NATS user (a stack user, minted from the keystore)
    roster       learner ids and emails from the auth database
    online       who is connected now (the NATS monitoring endpoint /connz)
    progress     the `labkit_progress` KV bucket, decoded
    stats        every application server's `$SRV.STATS`, summed per learner
    wiretap      the class-wide wire tap (observer credentials)
    collect      one snapshot of all of that for the page
    actions      revoke a learner, reset a password, export CSV
    handlers     the tornado handlers (HubOAuth, admin only, xsrf on every POST)
    service      its entry in the hub's config (no JupyterHub import)
    app          the tornado application and `main()`
"""
