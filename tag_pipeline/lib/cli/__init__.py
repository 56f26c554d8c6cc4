"""What the ``tag-pipeline`` command line does, as plain functions (``tag_pipeline.cli`` parses
the arguments, reads the settings and prints): choosing registry versions, tagging products
from files, evaluating a version on a labelled file and checking an installation."""
