"""The cue method: the content's tempo, register, loudness, dynamics, brightness, articulation and mode edited toward
an emotion (spec/EMOTION_CUES.md). method.py keeps the transfer-method contract; plan.py chooses the moves from
what the cue meter (estm_core/cues) hears; chain.py makes them, one stage per edit family: stretch.py (tempo and
register), mode.py, articulation.py, tilt.py (brightness), level.py (gain, dynamics, the limiter), over the stage
runner (stages.py), with the float32 spool and the worker processes of spool.py.
"""
