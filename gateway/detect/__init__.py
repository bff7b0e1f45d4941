"""Detectors: small synchronous units that inspect one SMS and return findings
(`gateway.domain.Detector`). Rule-driven ones read their rules from `config/rules/`:

* `content.ContentDetector`: fraud themes in the text (content.toml);
* `urls.UrlDetector`: links — brand look-alikes, shorteners, IPs, campaigns (brands.toml);
* `sender.SenderDetector`: protected sender ids from the wrong bind, spoofed and malformed
  sender addresses (senders.toml);
* `velocity.VelocityDetector`: fan-out and floods.

Modules are imported on use (`from gateway.detect.content import ContentDetector`): this package
imports nothing itself, so loading one detector does not load the others' dependencies.
"""
