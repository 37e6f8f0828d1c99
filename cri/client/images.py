"""ImageService over CRI v1 gRPC (the runtime's own image store, containerd's or
pycontainer-cri's)."""
from __future__ import annotations

from cri import api
from cri.client import from_proto
from cri.client.connection import call, channel
from cri.proto import api_pb2 as pb, api_pb2_grpc as pb_grpc

PULL_TIMEOUT = 600.0     # a pull may take long; the kubelet sets none on it either


class RemoteImages(api.ImageService):
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._channel = channel(endpoint)
        self._stub = pb_grpc.ImageServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def pull_image(self, ref: str) -> str:
        return call(self._stub.PullImage, pb.PullImageRequest(image=pb.ImageSpec(image=ref)),
                    "PullImage", timeout=PULL_TIMEOUT).image_ref

    def image_status(self, ref: str) -> api.Image | None:
        response = call(self._stub.ImageStatus,
                        pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), "ImageStatus")
        return from_proto.image(response.image) if response.HasField("image") else None

    def remove_image(self, ref: str) -> None:
        try:
            call(self._stub.RemoveImage, pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)),
                 "RemoveImage")
        except api.NotFound:
            pass

    def list_images(self) -> list[api.Image]:
        return [from_proto.image(i) for i in call(self._stub.ListImages, pb.ListImagesRequest(),
                                                    "ListImages").images]
