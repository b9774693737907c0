import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPaths } from '../src/adapters/yaml-files.js';
import { compileIR } from '../src/compiler/compile.js';
import { isAllowed } from '../src/compiler/ir/query.js';
import { anchoredPathRegex, fullMatch } from '../src/compiler/regex.js';

const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const BUYER = id('bookbuyer', 'bookbuyer');
const THIEF = id('bookthief', 'bookthief');
const STORE = id('bookstore', 'bookstore');
const WAREHOUSE = id('bookwarehouse', 'bookwarehouse');
const MYSQL = id('bookwarehouse', 'mysql');
const get = (path: string, ua = 'bookbuyer/1.0') => ({ method: 'GET', path, headers: { 'user-agent': ua } });

const deny = compileIR(await loadPaths(['golden/bookstore/input'])).ir;
const permissive = compileIR(await loadPaths(['golden/bookstore-permissive/input'])).ir;

test('bookbuyer may buy a book from bookstore with its user agent', () => {
  assert.equal(isAllowed(deny, BUYER, STORE, 8080, get('/buy-a-book')), true);
  assert.equal(isAllowed(deny, BUYER, STORE, 8080, get('/books-bought')), true);
});

test('bookthief may not call bookstore at all (deny by default)', () => {
  assert.equal(isAllowed(deny, THIEF, STORE, 8080, get('/buy-a-book')), false);
  assert.equal(isAllowed(deny, THIEF, STORE, 8080), false);
});

test('an allowed source is still limited to its routes, methods and headers', () => {
  assert.equal(isAllowed(deny, BUYER, STORE, 8080, { ...get('/buy-a-book'), method: 'POST' }), false);
  assert.equal(isAllowed(deny, BUYER, STORE, 8080, get('/buy-a-book', 'curl/8')), false);
  assert.equal(isAllowed(deny, BUYER, STORE, 8080, { method: 'GET', path: '/buy-a-book', headers: {} }), false);
  assert.equal(isAllowed(deny, BUYER, STORE, 8080, get('/admin')), false);
  assert.equal(isAllowed(deny, BUYER, STORE, 8080), false, 'an HTTP grant is no raw TCP access');
});

test('TCP access to the database is granted on its port only, and only to bookwarehouse', () => {
  assert.equal(isAllowed(deny, WAREHOUSE, MYSQL, 3306), true);
  assert.equal(isAllowed(deny, WAREHOUSE, MYSQL, 3307), false);
  assert.equal(isAllowed(deny, STORE, MYSQL, 3306), false);
});

test('permissive mode allows all in-mesh traffic but nothing from outside the mesh', () => {
  assert.equal(isAllowed(permissive, THIEF, STORE, 8080, get('/anything')), true);
  assert.equal(isAllowed(permissive, STORE, MYSQL, 3306), true);
  assert.equal(isAllowed(permissive, id('elsewhere', 'stranger'), STORE, 8080, get('/')), false);
});

test('pathRegex is anchored at the start of the path only', () => {
  const r = anchoredPathRegex('/books');
  assert.equal(fullMatch(r, '/books'), true);
  assert.equal(fullMatch(r, '/books/1'), true);
  assert.equal(fullMatch(r, '/api/books'), false);
  assert.equal(fullMatch(anchoredPathRegex('^/books$'), '/books'), true);
  assert.equal(fullMatch(anchoredPathRegex('^/books$'), '/books/1'), false);
  assert.equal(fullMatch(anchoredPathRegex(undefined), '/whatever'), true);
});

test('the bookstore split sends 90% to v1 and 10% to v2 of the root service', () => {
  assert.deepEqual(deny.splits, [
    {
      namespace: 'bookstore',
      service: 'bookstore',
      from: 'bookstore/bookstore-split',
      backends: [
        { service: 'bookstore-v1', weight: 9 },
        { service: 'bookstore-v2', weight: 1 },
      ],
      matches: [],
    },
  ]);
});
