-- The demo's source schema: users, their todo lists, todos, and lists shared with other users.
-- Idempotent: safe to apply to a database that already has it.
CREATE TABLE IF NOT EXISTS users (
    id          text PRIMARY KEY,
    name        text NOT NULL
);
CREATE TABLE IF NOT EXISTS lists (
    id          text PRIMARY KEY,
    owner_id    text NOT NULL REFERENCES users (id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS todos (
    id          text PRIMARY KEY,
    list_id     text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    description text NOT NULL,
    completed   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS list_shares (
    list_id     text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users (id),
    PRIMARY KEY (list_id, user_id)
);
ALTER TABLE list_shares REPLICA IDENTITY FULL;

INSERT INTO users (id, name) VALUES ('alice', 'Alice'), ('bob', 'Bob') ON CONFLICT DO NOTHING;
INSERT INTO lists (id, owner_id, name) VALUES
    ('groceries', 'alice', 'Groceries'),
    ('garage', 'bob', 'Garage projects')
ON CONFLICT DO NOTHING;
INSERT INTO todos (id, list_id, description, completed) VALUES
    ('t1', 'groceries', 'Milk', false),
    ('t2', 'groceries', 'Bread', true),
    ('t3', 'garage', 'Fix the bike', false)
ON CONFLICT DO NOTHING;
