"""Raw data -> prepared splits -> token ids."""
