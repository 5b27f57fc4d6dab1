"""Data intake: the procedural phantom, the SIIM-ACR and folder readers, and ``data/prepared`` (writer and reader)."""
