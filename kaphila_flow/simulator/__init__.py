"""A Kaphila of your own on loopback: every endpoint, scripted callees, real webhooks.

    kaphila-flow simulator --port 8000 --config callees.toml

or in Python (e.g. in tests, from asyncio or trio code):

    with SimulatorThread(Simulator(speed=INSTANT)) as sim:
        client = KaphilaClient("ak_simulator", base_url=sim.base_url)
"""

from .._callees import Callee, KeyStep
from .._provider import Account, Faults, Provider
from ._book import load_simulator, simulator_from_mapping
from ._core import DEFAULT_KEY, INSTANT, USER_AGENT, AnswerHow, Simulator
from ._http import create_app
from ._notices import Notice, NoticeFeed, NoticeKind
from ._process import simulator_process
from ._serving import SimulatorThread, serve_simulator

__all__ = [
    "DEFAULT_KEY",
    "INSTANT",
    "USER_AGENT",
    "Account",
    "AnswerHow",
    "Callee",
    "Faults",
    "KeyStep",
    "Provider",
    "Notice",
    "NoticeFeed",
    "NoticeKind",
    "Simulator",
    "SimulatorThread",
    "create_app",
    "load_simulator",
    "serve_simulator",
    "simulator_process",
    "simulator_from_mapping",
]
