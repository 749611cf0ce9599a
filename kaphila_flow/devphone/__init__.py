"""A dev phone in the browser: be the callee of any flow and watch its calls live.

    kaphila-flow phone examples/ivr_menu.py:flow 16089270862
    kaphila-flow simulator --phone          # the page for any client of the simulator

or in Python, with the simulator on one loopback port and the page at ``/phone/``:

    async with anyio.create_task_group() as tg:
        phone = await tg.start(serve_phone, Simulator(default_callee=Callee(answer="held")))
        print(phone.page_url)
"""

from ._phone import PAGE_PATH, DevPhone, Dialer
from ._serving import serve_phone

__all__ = ["PAGE_PATH", "DevPhone", "Dialer", "serve_phone"]
