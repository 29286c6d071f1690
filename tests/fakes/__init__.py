"""Local fakes of the outside services psiturk-async talks to (MTurk first), for tests that go over the wire."""
