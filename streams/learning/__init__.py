"""Online learning: ``scorer learn`` keeps a river champion learning from joined labels and
registers what it learned as new versions (:mod:`streams.learning.learner`)."""
