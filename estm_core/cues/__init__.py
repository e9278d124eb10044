"""Cue space: the musical cues listeners read as emotion (spec/EMOTION_CUES.md), measured in audio."""
