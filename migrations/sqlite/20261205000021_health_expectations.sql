-- What an environment's health answer must be besides reachable: the exact
-- status (NULL: any 2xx) and a text its body must hold (NULL: none; its
-- length and characters are checked by the engine, like every setting).
ALTER TABLE environments ADD COLUMN health_status INTEGER
    CHECK (health_status IS NULL OR health_status BETWEEN 100 AND 599);
ALTER TABLE environments ADD COLUMN health_body TEXT;
