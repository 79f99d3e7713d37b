"""The authentication service: register, log in, get NATS credentials, log out."""
