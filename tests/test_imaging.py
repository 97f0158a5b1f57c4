import numpy as np
import pytest
from PIL import Image

from conftest import photo
from shift_hub.imaging import apply_geometry
from shift_hub.registry import STANDARD, Geometry


@pytest.mark.parametrize("h, w", [(300, 451), (451, 300), (256, 256), (500, 257), (180, 200)])
def test_standard_geometry_matches_torchvision_resize_and_center_crop(h, w):
    from torchvision import transforms

    arr = photo(h + w, (h, w))
    ref = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])(Image.fromarray(arr))
    np.testing.assert_array_equal(apply_geometry(arr, STANDARD), np.asarray(ref))


@pytest.mark.parametrize("h, w, capped, cropped", [(1056, 1210, (720, 825), (720, 824)), (1210, 1056, (825, 720), (824, 720)),
                                                   (900, 900, (720, 720), (720, 720)), (700, 1000, (700, 1000), (696, 1000)),
                                                   (13, 21, (13, 21), (8, 16))])
def test_cartoon_geometry_caps_shorter_side_then_crops_to_multiples_of_8(h, w, capped, cropped):
    """As White-box's resize_crop: long side int(720 * long / short), INTER_AREA, then top-left crop."""
    image = np.zeros((h, w, 3), np.uint8)
    assert apply_geometry(image, Geometry(max_shorter=720)).shape[:2] == capped
    assert apply_geometry(image, Geometry(max_shorter=720, crop_multiple=8)).shape[:2] == cropped
