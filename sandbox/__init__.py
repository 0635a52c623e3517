"""`make sandbox`: emulated nodes loaded with the demo configuration and the real service."""
