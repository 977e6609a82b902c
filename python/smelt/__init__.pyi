import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

class SmeltError(Exception): ...
class InputError(SmeltError): ...

class NodeArg:
    name: str
    shape: List[Union[int, str, None]]
    type: str

class Session:
    def __init__(
        self,
        model: Union[str, os.PathLike, bytes],
        threads: Optional[int] = ...,
        mode: str = ...,
        weights: str = ...,
        target: str = ...,
        cost_profile: Optional[Union[str, os.PathLike]] = ...,
        shapes: Optional[Mapping[str, Sequence[int]]] = ...,
    ) -> None: ...
    def get_inputs(self) -> List[NodeArg]: ...
    def get_outputs(self) -> List[NodeArg]: ...
    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any]) -> List[np.ndarray]: ...

def report(
    path: Union[str, os.PathLike],
    target: str = ...,
    cost_profile: Optional[Union[str, os.PathLike]] = ...,
    weights: str = ...,
) -> Dict[str, Any]: ...
def plan(path: Union[str, os.PathLike], target: str = ..., weights: str = ...) -> Dict[str, Any]: ...
def tune(
    path: Union[str, os.PathLike],
    profile: Union[str, os.PathLike],
    target: str = ...,
    threads: int = ...,
    max_rounds: int = ...,
    weights: str = ...,
) -> Dict[str, Any]: ...
