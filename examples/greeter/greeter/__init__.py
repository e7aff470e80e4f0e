"""The greeter: a Switchboard component kept outside Switchboard, as a user's own project would be."""
