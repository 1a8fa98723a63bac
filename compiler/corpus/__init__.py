"""Realistic data for the shipped-model corpus, and the end-to-end tasks run on it.

Everything is made by code from what installed pip packages ship, never downloaded:

- :mod:`.fonts` finds the CJK and Latin fonts that font packages ship;
- :mod:`.text_render` renders text lines and small pages with them (the ground truth is the
  rendered string and where it was drawn);
- :mod:`.speech` speaks sentences with the eSpeak NG library a wheel bundles and places them
  among silence and noise (the ground truth is where the speech was placed);
- :mod:`.ctc` and :mod:`.db_boxes` are PP-OCR's post-processing, :mod:`.ocr_pipeline` the
  detector -> classifier -> recogniser pipeline over any session with ``run(None, feeds)``;
- :mod:`.vad_segments` turns Silero's per-chunk probabilities into speech segments and scores
  them.
"""
