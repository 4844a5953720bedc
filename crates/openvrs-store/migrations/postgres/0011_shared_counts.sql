-- openvrs schema, version 11: counters shared by the server processes of one database (rate
-- limits per account and client, malformed requests, persons read per user), so that a limit
-- holds across every process behind a load balancer. A process adds what it counted every
-- half second; windows are dropped two hours after they began. National: on Citus it stays
-- on the coordinator.
CREATE TABLE shared_counts (
    counter TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (counter, window_start)
);
