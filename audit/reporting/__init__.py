"""The report's building blocks: the verdict table (what each test decided, and whether the
planted controls were recovered) and the HTML page. The ``report`` stage (:mod:`audit.report`)
reads the stages' files and assembles them; nothing here reads files or parses arguments.
"""
