"""What the NSC and auth HTTP services share: request-body limits and serving."""
