"""A blind listening test in the browser (`estm listen`): people, not models, judge a transfer.

    sources.py     what is to be heard: an `estm evaluate transfer` report folder, or folders of files (one a system)
    plan.py        the trials, the hidden duplicates and each listener's order: the test's plan.json
    stimuli.py     the audio the listeners hear: cut, the 3.5 kHz anchor, loudness-matched
    make.py        a test folder made whole or not at all
    answers.py     answers checked, appended one JSON line each, read back; who has answered what
    server.py      the web server (standard library) and the page (page.html, page.js, page.css)
    statistics.py  Wilson and t intervals, Fleiss' kappa, BS.1534 post-screening
    results.py     the results of a test: per system, with exclusions; figure.py draws them
"""
