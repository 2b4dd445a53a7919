#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check corral's OpenAPI document, and answers against it.

openapi-check.py DOC                 the document itself: OpenAPI 3.1, every schema valid
                                     JSON Schema 2020-12, every $ref resolves
openapi-check.py DOC ANSWERS...      and each recorded answer: one file per answer, its first
                                     line "METHOD PATH STATUS CONTENT-TYPE", then its body
openapi-check.py DOC --events FILE   and the data of each server-sent event in FILE

An answer is valid when the document has its path and method, lists its status, and its body
validates against the schema of that status and content type. A path the document lacks must
be answered 404, a method it lacks 405; 413, 414, 431 and 503 may answer any request (they
come before routing). Prints what is wrong, exit 1 if anything is.
"""
import json
import re
import sys

import jsonschema

ANY_REQUEST = {'413': 'TooLarge', '414': 'UriTooLong', '431': 'HeadersTooLarge', '503': 'Unavailable'}


class Doc:
    def __init__(self, path):
        with open(path) as f:
            self.doc = json.load(f)
        # Templates with fewer parameters first: /api/issues/{id}/comments before a
        # hypothetical /api/{x}/{y}/comments.
        self.templates = []
        for t in self.doc['paths']:
            rx = '^' + re.sub(r'\\\{[^/]+?\\\}', '[^/]+', re.escape(t)) + '/?$'
            self.templates.append((t.count('{'), t, re.compile(rx)))
        self.templates.sort()
        self._validators = {}

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            # $refs resolve against the whole document (#/components/...). RefResolver is
            # what Debian 12's jsonschema (4.10) has; newer ones warn and still take it.
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', DeprecationWarning)
                resolver = jsonschema.RefResolver.from_schema(self.doc)
                v = jsonschema.Draft202012Validator(schema, resolver=resolver)
            self._validators[key] = v
        return v

    def resolve(self, obj):
        while isinstance(obj, dict) and '$ref' in obj:
            node = self.doc
            for part in obj['$ref'].lstrip('#/').split('/'):
                node = node[part]
            obj = node
        return obj

    def self_check(self):
        errors = []
        if not str(self.doc.get('openapi', '')).startswith('3.1.'):
            errors.append('openapi is not 3.1.x')
        for name, s in self.doc['components']['schemas'].items():
            try:
                jsonschema.Draft202012Validator.check_schema(s)
            except jsonschema.SchemaError as e:
                errors.append(f'components.schemas.{name}: {e.message}')

        def walk(node, where):
            if isinstance(node, dict):
                r = node.get('$ref')
                if isinstance(r, str):
                    try:
                        self.resolve({'$ref': r})
                    except (KeyError, TypeError):
                        errors.append(f'{where}: $ref {r} resolves to nothing')
                for k, v in node.items():
                    walk(v, f'{where}.{k}')
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, f'{where}[{i}]')
        walk(self.doc, '')
        for t, item in self.doc['paths'].items():
            for method, o in item.items():
                if not o.get('responses'):
                    errors.append(f'{method.upper()} {t}: no responses')
                for p in o.get('parameters', []):
                    p = self.resolve(p)
                    if p['in'] == 'path' and '{' + p['name'] + '}' not in t:
                        errors.append(f'{method.upper()} {t}: path parameter {p["name"]} is not in the path')
        return errors

    def route(self, path):
        path = path.split('?', 1)[0]
        for _, t, rx in self.templates:
            if rx.match(path):
                return t
        return None

    def check_body(self, response, ctype, body, what):
        response = self.resolve(response)
        content = response.get('content')
        if not content:
            return [] if not body.strip() else [f'{what}: the document says no body, and there is one']
        media = ctype.split(';', 1)[0].strip()
        if media not in content:
            return [f'{what}: Content-Type {media or "(none)"} is not one of {", ".join(content)}']
        schema = content[media].get('schema')
        if media != 'application/json' or schema is None:
            return []
        try:
            value = json.loads(body)
        except ValueError as e:
            return [f'{what}: the body is no JSON ({e})']
        return [f'{what}: {"/".join(str(p) for p in err.absolute_path) or "(the body)"}: {err.message[:300]}'
                for err in sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))[:5]]

    def check_answer(self, method, path, status, ctype, body):
        what = f'{method} {path} -> {status}'
        t = self.route(path)
        generic = self.doc['components']['responses']
        if status in ANY_REQUEST:
            return self.check_body(generic[ANY_REQUEST[status]], ctype, body, what)
        if t is None:
            if status != '404':
                return [f'{what}: the document has no such path']
            return self.check_body(generic['NotFound'], ctype, body, what)
        o = self.doc['paths'][t].get(method.lower())
        if o is None:
            if status != '405':
                return [f'{what}: the document has no {method} for {t}']
            return self.check_body(generic['MethodNotAllowed'], ctype, body, what)
        responses = o['responses']
        r = responses.get(status) or responses.get(status[0] + 'XX') or responses.get('default')
        if r is None:
            return [f'{what}: status {status} is not among those of {method} {t} ({", ".join(responses)})']
        return self.check_body(r, ctype, body, f'{what} ({t})')


def check_events(doc, path):
    """The data of each event of a text/event-stream capture, by its event: name."""
    schemas = {'run.log': 'RunLogEvent', 'gap': 'GapEvent', 'dropped': 'DroppedEvent'}
    errors = []
    n = 0
    with open(path, errors='replace') as f:
        block = {}
        for line in f.read().split('\n') + ['']:
            if line == '':
                if 'data' in block:
                    n += 1
                    name = schemas.get(block.get('event', ''), 'Event')
                    try:
                        value = json.loads(block['data'])
                    except ValueError as e:
                        errors.append(f'event {block.get("event")}: data is no JSON ({e})')
                    else:
                        for err in doc.validator({'$ref': '#/components/schemas/' + name}).iter_errors(value):
                            errors.append(f'event {block.get("event")}: {err.message[:300]}')
                block = {}
            elif not line.startswith(':') and ':' in line:
                k, v = line.split(':', 1)
                block[k] = v[1:] if v.startswith(' ') else v
    return errors, n


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    doc = Doc(argv[1])
    errors = doc.self_check()
    n = 0
    args = argv[2:]
    if args[:1] == ['--events']:
        e, n = check_events(doc, args[1])
        errors += e
        args = []
    for name in args:
        with open(name, 'rb') as f:
            head, _, body = f.read().partition(b'\n')
        fields = head.decode('utf-8', 'replace').split(' ', 3)
        if len(fields) < 3 or fields[2] == '000':
            continue  # no answer: the connection failed, which the test itself reports
        method, path, status = fields[:3]
        ctype = fields[3] if len(fields) > 3 else ''
        n += 1
        errors += doc.check_answer(method, path, status, ctype, body.decode('utf-8', 'replace'))
    for e in errors:
        print(e)
    print(f'{n} checked, {len(errors)} wrong')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
