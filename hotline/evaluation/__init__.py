"""Evaluation (评价反馈, 好差评): rating links and ratings, messages to citizens, rectification, appeals."""
