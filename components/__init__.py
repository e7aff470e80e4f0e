"""Application components hosted by Switchboard's router (the demo application and your own)."""
