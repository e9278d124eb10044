"""Datasets: the real layouts (DEAM, MER TAFFC, GTZAN, Emotify, any folder), song-level splits, segmenting into an
int16 cache, transfer-experiment pairs, the synthetic SynthEmo corpus, and torch Datasets over the cache."""
