"""Faces: MTCNN detection (facenet-pytorch's networks, stage for stage), FaceNet embedding, the runtimes
they run in, and the one face pipeline of both phases (:mod:`lookalike.faces.pipeline`)."""

from lookalike.faces.config import FaceConfig
from lookalike.faces.pipeline import NO_FACE, Face, FacePipeline, face_thumbnail, pipeline_fingerprint

__all__ = ["NO_FACE", "Face", "FaceConfig", "FacePipeline", "face_thumbnail", "pipeline_fingerprint"]
