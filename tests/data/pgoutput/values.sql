-- Workload for the "values" capture: typical values, extremes, quoting and NULLs.
INSERT INTO all_types VALUES (
    1, -32768, 9223372036854775807, 12345.67891, -0.000001, 1.5, 0.1, true,
    E'h\u00e9llo "quoted" \\ back\nslash', 'varchar', 'ab', 'x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{"a": [1, 2.50, "x"], "b": null}', '{"b": {"c": true}, "a": 9007199254740993}',
    '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.5+02', '2024-02-29', '23:59:59.999', '1 year 2 mons 3 days 04:05:06.7',
    '\x00ff10', '{1,2,3}', ARRAY['plain', 'with space', 'with "quote"', 'back\slash', NULL, 'NULL', '', 'comma,here'],
    '{{1,2},{3,9223372036854775807}}', '{1.5,-0.25,1e300,NaN}', '{t,f,NULL}', ARRAY['{"k": [1]}'::jsonb, 'null'::jsonb],
    '{sad,happy}', 'ok', 42, 'short', '{1.50,NaN,-3}', ARRAY['2024-01-01 00:00:00+00'::timestamptz]);
INSERT INTO all_types VALUES (
    2, 32767, -9223372036854775808, 'NaN', 'Infinity', '-Infinity', 'NaN', false,
    '', '', ' ', '', '00000000-0000-0000-0000-000000000000', '[]', '[]',
    'infinity', '-infinity', '0001-01-01 BC', '00:00', '-1 days +00:00:01', '', '{}', '{}',
    '{}', '{}', '{}', '{}', '{}', 'happy', 9223372036854775807, NULL, '{}', '{}');
INSERT INTO all_types (id) VALUES (3);
INSERT INTO all_types (id, ints, f8, f4) VALUES (4, '[0:2]={7,8,9}', 1e21, 3.0);
SELECT pg_logical_emit_message(false, 'capture-end', '');
