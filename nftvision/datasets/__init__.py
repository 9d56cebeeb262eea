"""Real images to learn, test and benchmark on: the 10,000 CryptoPunks and image folders."""

from nftvision.datasets.folders import FolderItem, load_image_folder
from nftvision.datasets.punks import PUNK_TYPES, PunkRecord, load_cryptopunks, punks_pickle_path

__all__ = [
    "PUNK_TYPES",
    "FolderItem",
    "PunkRecord",
    "load_cryptopunks",
    "load_image_folder",
    "punks_pickle_path",
]
