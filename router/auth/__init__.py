"""Authentication against the user store: Crossbar function authenticators, throttling, the adapter."""
