"""Running a submission: the child process that loads it and turns images into logits
(``child.py``, the untrusted side: ``loaders.py`` per form, ``infer.py``, ``describe.py``, all
built on ``network.py``) and the parent side that starts it and checks what comes back
(``launch.py``). ``protocol.py`` is the wire format between them.
"""
