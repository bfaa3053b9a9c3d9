-- Alerts raised by failing tasks (Airflow failure callbacks and the CLI's run-day).
CREATE TABLE ops.alerts (
    alert_id     bigserial PRIMARY KEY,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL,
    task         text NOT NULL,
    logical_date date,
    try_number   integer,
    error        text NOT NULL
);
CREATE INDEX alerts_date_idx ON ops.alerts (logical_date);
