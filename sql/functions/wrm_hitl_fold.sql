-- Human requests and decisions of one run, paired first in, first out (spec 4.3): `events` are
-- (time ns, kind, span id, duration ns) sorted by time then kind, kind 0 for a
-- wrm.hitl.state=requested marker (its start) and 1 for a decision (its end). Each decision answers
-- the oldest request still open and waited from it to the decision's end; with none open, it waited
-- its own duration. Returns (the start times of the requests still open, [(decision span id, wait
-- ns)]).
CREATE OR REPLACE FUNCTION wrm_hitl_fold AS (events) ->
    arrayFold((acc, e) -> if(e.2 = 0,
                             (arrayPushBack(acc.1, e.1), acc.2),
                             (arrayPopFront(acc.1),
                              arrayPushBack(acc.2, (e.3, if(empty(acc.1), e.4, e.1 - acc.1[1]))))),
              events,
              (CAST([], 'Array(Int64)'), CAST([], 'Array(Tuple(String, Int64))')));
