"""An independent MMS client (libiec61850 through pyiec61850-ng), run as its own process by the tests.

GPLv3 test tooling: the platform never imports it. It runs out of process because the blocking SWIG
client holds the GIL while it waits on its socket, and the server under test needs the GIL to run its
write callback. Usage: ``python mms_client.py PORT`` with a JSON list of operations on stdin:
``["ld"]``, ``["read", kind, reference, fc]`` (kind: float, int, bool, string) or
``["write", "float", reference, fc, value]``; prints one JSON list of results (``{"error": code}``
for a failed service).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pyiec61850.pyiec61850 as lib

ASSOCIATION_ATTEMPTS = 5


def main() -> int:
    port = int(sys.argv[1])
    ops = json.load(sys.stdin)
    con = None
    for attempt in range(ASSOCIATION_ATTEMPTS):
        con = lib.IedConnection_create()
        lib.IedConnection_setRequestTimeout(con, 5000)
        _, err = lib.IedConnection_connect(con, "127.0.0.1", port)
        if err == lib.IED_ERROR_OK:
            # the server under test now and then drops a fresh association on its first request:
            # a probe that answers shows the association holds (the operations below are never repeated)
            devices, err = lib.IedConnection_getLogicalDeviceList(con)
            if err == lib.IED_ERROR_OK:
                lib.LinkedList_destroy(devices)
                if attempt:
                    print(f"association held on attempt {attempt + 1}", file=sys.stderr)
                break
        lib.IedConnection_close(con)
        lib.IedConnection_destroy(con)
        con = None
        time.sleep(0.2)
    if con is None:
        print(json.dumps({"connect_error": int(err)}))
        return 2
    fcs = {
        "MX": lib.IEC61850_FC_MX,
        "SP": lib.IEC61850_FC_SP,
        "ST": lib.IEC61850_FC_ST,
        "CF": lib.IEC61850_FC_CF,
        "DC": lib.IEC61850_FC_DC,
    }
    readers = {
        "float": lib.IedConnection_readFloatValue,
        "int": lib.IedConnection_readInt32Value,
        "bool": lib.IedConnection_readBooleanValue,
        "string": lib.IedConnection_readStringValue,
    }
    names = {getattr(lib, n): n.removeprefix("IED_ERROR_") for n in dir(lib) if n.startswith("IED_ERROR_")}

    def error(code: int) -> dict[str, Any]:
        return {"error": names.get(code, str(code))}

    out: list[Any] = []
    try:
        for op in ops:
            if op[0] == "ld":
                devices, err = lib.IedConnection_getLogicalDeviceList(con)
                if err != lib.IED_ERROR_OK:
                    out.append(error(err))
                    continue
                devices_names = []
                element = lib.LinkedList_getNext(devices)
                while element:
                    devices_names.append(lib.toCharP(element.data))
                    element = lib.LinkedList_getNext(element)
                lib.LinkedList_destroy(devices)
                out.append(devices_names)
            elif op[0] == "read":
                value, err = readers[op[1]](con, op[2], fcs[op[3]])
                out.append(value if err == lib.IED_ERROR_OK else error(err))
            elif op[0] == "write":
                _, err = lib.IedConnection_writeFloatValue(con, op[2], fcs[op[3]], float(op[4]))
                out.append("ok" if err == lib.IED_ERROR_OK else error(err))
            else:
                out.append({"error": f"unknown operation {op[0]!r}"})
    finally:
        lib.IedConnection_close(con)
        lib.IedConnection_destroy(con)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
