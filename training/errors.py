"""Failures the command line reports as one line on stderr, without a traceback."""


class TrainingError(Exception):
    """A problem the user can act on: the message names the file or check that failed."""


class MnistFileError(TrainingError, ValueError):
    """A data file is missing, truncated or corrupt; the message names the file and the problem."""


class ParityError(TrainingError):
    """ONNX Runtime and Keras disagree on the test images, so nothing is written."""
