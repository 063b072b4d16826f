"""Attachments (附件): citizens' photos and documents, departments' proof of handling, call
recordings; judged by content, stored outside the database, shown to those who see the ticket."""
