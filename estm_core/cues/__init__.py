"""Cue space: the musical cues listeners read as emotion (spec/EMOTION_CUES.md), measured in any audio.

meter.py is the cue meter (what `estm analyze` prints; spectral.py holds what it reads from the mono signal, and
estm_core/loudness.py its loudness); judge.py the cue judge of `estm evaluate transfer`; emotion.py the recogniser
that hears arousal and valence in the cues. The cue method that edits them lives in estm_core/methods/cues.
"""
