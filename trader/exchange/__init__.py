"""Exchange adapters behind one ``Exchange`` protocol (see ``base``)."""
