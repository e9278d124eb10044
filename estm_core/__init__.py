"""estm core library: audio, features, models, training and the public tasks.

Never imports typer or rich; long steps report progress through callbacks.
"""

__version__ = "0.1.0"
