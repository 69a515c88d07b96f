"""Where issued credentials are kept until they expire: see store.py for the interface."""
