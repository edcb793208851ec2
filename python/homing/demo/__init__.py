"""The weather-station demo of the original talk, run by ``homing demo``.

A weatherman (``weatherman``) enqueues weather reports to the service ``weather`` and
schedules forecasts with timers; a consumer process (``consumer``, run by ``homing worker``)
POSTs each one to a small weather web site (``site``). The demo (``run``, with the process
handling in ``supervisor``) SIGKILLs the consumer half-way through a POST, starts a fresh
one, and shows the event being redelivered: nothing sent is lost.
"""
